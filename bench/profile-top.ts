// `node --import tsx bench/profile-top.ts <file.cpuprofile> [rows]`: the functions with the most
// self time in a profile written by `node --cpu-prof` (see bench/README.md, Profiles).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type CpuProfile, profileTop } from './lib/profile-top.ts';

const [file, rows] = process.argv.slice(2);
if (!file) {
  console.error('usage: bench/profile-top.ts <file.cpuprofile> [rows]');
  process.exit(2);
}
const root = fileURLToPath(new URL('..', import.meta.url));
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
console.log('| self ms | share | function (file:line) |\n|---|---|---|');
for (const r of profileTop(profile, Number(rows ?? 25), root)) console.log(`| ${r.selfMs} | ${(r.share * 100).toFixed(1)}% | ${r.frame} |`);
