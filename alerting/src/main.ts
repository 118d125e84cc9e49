#!/usr/bin/env node
import { runService } from '@fleetpulse/runtime';
import { helpText, loadConfig } from './config';
import { startAlerting } from './service';

runService({
  name: 'alerting',
  help: helpText,
  stopping: 'stopping',
  start: (args) => startAlerting(loadConfig(process.env, args)),
});
