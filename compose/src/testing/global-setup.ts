// Placeholder until the launcher lands: integration tests need the stack from compose/.
export default async function globalSetup(): Promise<void> {}
