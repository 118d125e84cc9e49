#!/usr/bin/env node
import { runService } from '@fleetpulse/runtime';
import { helpText, loadConfig } from './config';
import { startScoring } from './service';

runService({
  name: 'scoring',
  help: helpText,
  stopping: 'stopping',
  start: (args) => startScoring(loadConfig(process.env, args)),
});
