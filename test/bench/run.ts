/**
 * @fileoverview `npm run bench`: every benchmark, as `name: value` lines.
 */
import { report } from './util.ts';
import { machineBench } from './machine.bench.ts';

report(await machineBench());
