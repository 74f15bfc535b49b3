import { defineConfig } from "vite";

// noVNC 1.7 probes WebCodecs with a top-level await in core/util/browser.js,
// so the bundle must target a baseline that allows top-level await.
export default defineConfig({
  base: "/",
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
  },
});
