/** Injection token of the validated DashboardConfig. */
export const DashboardConfigToken = Symbol('DashboardConfig');
