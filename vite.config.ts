/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The dashboard is one root Vite app (sources in src/frontend/), built to dist/. In development
// `npm run dev` proxies the API to a local `autopack serve`; in production the API serves dist/
// itself, or nginx does (Dockerfile.frontend).
const backend = process.env.AUTOPACK_DEV_BACKEND ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Hashed file names under assets/ are what lets the server cache them as immutable.
    assetsDir: "assets",
    sourcemap: false,
  },
  server: {
    proxy: {
      "/api": { target: backend, changeOrigin: false },
      "/health": { target: backend },
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/frontend/**/*.test.{ts,tsx}"],
    setupFiles: ["src/frontend/test/setup.ts"],
    restoreMocks: true,
  },
});
