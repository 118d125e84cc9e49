#!/usr/bin/env node
// Our package registry serves only some platforms' builds of packages such as @swc/core and
// @unrs/resolver-binding: `npm install` here leaves the others out of package-lock.json, and `npm ci` then refuses
// the lock as out of sync. This adds each missing optional platform package the way npm records it where the
// registry has it (version from its parent's optionalDependencies, os/cpu from its name), so npm ci skips them on
// this platform without fetching. Run after any `npm install`:  node .ci/complete-lockfile.mjs
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const lockPath = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const packages = lock.packages;
const oses = ['darwin', 'win32', 'freebsd', 'android', 'openharmony', 'linux', 'netbsd', 'openbsd', 'sunos', 'aix'];
const cpus = ['arm64', 'x64', 'ia32', 'arm', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el', 'wasm32'];
let added = 0;
for (const [path, entry] of Object.entries(packages)) {
  for (const [name, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (packages[key] || packages[`${path}/node_modules/${name}`]) continue;
    const base = name.split('/').pop();
    const os = oses.find((o) => base.includes(o));
    const cpu = cpus.find((c) => new RegExp(`(^|-)${c}($|-)`).test(base));
    if (!os && !cpu) continue; // not a platform build: leave it to npm
    const added_ = { version: String(spec).replace(/^[\^~=]/, ''), optional: true };
    if (os) added_.os = [os];
    if (cpu) added_.cpu = [cpu];
    packages[key] = added_;
    added++;
  }
}
writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n');
console.log(`package-lock.json: added ${added} optional platform package(s) the registry does not serve here`);
if (process.argv.includes('--check'))
  execFileSync('npm', ['ci', '--dry-run', '--ignore-scripts'], { stdio: 'inherit' });
