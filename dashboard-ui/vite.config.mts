import { defineConfig } from 'vite';

// `npm run dev -w dashboard-ui` serves the UI with hot reload and forwards the API and socket.io to a running
// dashboard-api (FLEETPULSE_DASHBOARD_URL, default http://127.0.0.1:3000); `vite build` writes dist/, which the
// API serves at /.
const api = process.env.FLEETPULSE_DASHBOARD_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 600 },
  server: {
    proxy: {
      '/api': api,
      '/socket.io': { target: api, ws: true },
    },
  },
});
