// Property tests run thousands of cases: on a shared 2-core machine they can outlast jest's 5 s default, which
// would fail them for the machine's load, not for a bug (jest's testTimeout is global-only; projects set it here).
jest.setTimeout(60_000);
