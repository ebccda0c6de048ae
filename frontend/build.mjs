// Bundles each front end into dist/ (one self-contained script per page, no CDN) and copies the pages.
import { build } from "esbuild";
import { cpSync, mkdirSync } from "node:fs";

mkdirSync("dist", { recursive: true });
await build({
  entryPoints: {
    "search-ui": "src/search-ui.js",
    searchkit: "src/searchkit.js",
    reactivesearch: "src/reactivesearch.js",
  },
  bundle: true,
  format: "iife",
  minify: true,
  target: "es2020",
  outdir: "dist",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});
cpSync("public", "dist", { recursive: true });
