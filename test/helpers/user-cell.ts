/**
 * A user's recurrent cell for the grid and stream variants: an elementwise input term (hoisted by the
 * parallel map, not the matrix product), a contraction inside a state update (no let), a param read
 * transposed, and a bias read at a literal index.
 */
export const USER_CELL = `model Cell {
  dims H
  input x[H], u[H]
  param U[H, H], w[H], b[2]
  state h[H] = 0.5
  let a[j] = x[j] * w[j] + b[0] - sum(m) U[j, m] * h[m]
  h[j] = tanh(a[j] + sum(m) U[m, j] * h[m] * 0.5 + u[j])
  output o[j] = h[j] * b[1]
}`;
