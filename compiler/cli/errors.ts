/** An error caused by the user's input (bad file, missing tensor, wrong shape): printed without a stack trace, exit code 1. */
export class UserError extends Error {
  override name = "UserError";
}
