#!/usr/bin/env node
import { runService } from '@fleetpulse/runtime';
import { helpText, loadConfig } from './config';
import { startDashboard } from './app';

runService({
  name: 'dashboard-api',
  help: helpText,
  stopping: 'closing',
  start: () => startDashboard(loadConfig()),
});
