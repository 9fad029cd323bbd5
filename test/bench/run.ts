/**
 * @fileoverview `npm run bench`: every benchmark, as `name: value` lines.
 */
import { report } from './util.ts';
import { machineBench } from './machine.bench.ts';
import { interpBench } from './interp.bench.ts';
import { bpfBench } from './bpf.bench.ts';
import { objectsBench } from './objects.bench.ts';
import { trampolineBench } from './trampoline.bench.ts';
import { auditBench } from './audit.bench.ts';
import { abiBench } from './abi.bench.ts';
import { userBench } from './user.bench.ts';
import { verifierBench } from './verifier.bench.ts';
import { profilesBench } from './profiles.bench.ts';

report(await machineBench());
report(await interpBench());
report(await bpfBench());
report(await objectsBench());
report(await trampolineBench());
report(await auditBench());
report(await abiBench());
report(await userBench());
report(await verifierBench());
report(await profilesBench());
