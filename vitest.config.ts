import { defineConfig } from "vitest/config";

// Many suites start CLI processes or compile WGSL on a software Vulkan driver: on a loaded
// machine the 5 s default is too tight. Tests that need more set their own limit.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // tmp/ (git-ignored) holds scratch exports of the tree: their test copies are not this checkout's tests.
    exclude: ["**/node_modules/**", "tmp/**", "dist/**", ".anchors/**", ".device/**"],
  },
});
