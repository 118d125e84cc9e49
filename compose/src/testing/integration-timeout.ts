// Integration tests talk to a real broker and database on a shared 2-core machine: generous per-test limits
// (jest's testTimeout is global-only, so the integration project sets it here).
jest.setTimeout(120_000);
