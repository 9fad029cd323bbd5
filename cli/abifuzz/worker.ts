/**
 * @fileoverview One abi-fuzz worker process (campaign.ts forks one per job): runs its range of
 * cases on its own machine, under each kernel profile in turn, and reports progress and the
 * results (one per profile) to the parent over IPC.
 */
import { runRange, type CampaignOptions, type CampaignReport } from './campaign.ts';
import type { KernelVersion } from '../../kernel/profile.ts';

const { opts, start, end, kernels } = JSON.parse(process.argv[2]!) as { opts: CampaignOptions; start: number; end: number; kernels: KernelVersion[] };
const send = (m: unknown): Promise<void> => new Promise((resolve) => { process.send!(m, () => resolve()); });
const reports: CampaignReport[] = [];
let before = { done: 0, failed: 0 };
for (const kernel of kernels) {
  const r = await runRange({ ...opts, kernel, onProgress: (p) => { process.send!({ t: 'progress', p: { done: before.done + p.done, total: 0, failed: before.failed + p.failed } }); } }, start, end);
  before = { done: before.done + r.passed + r.failed + r.skipped, failed: before.failed + r.failed };
  reports.push(r);
}
await send({ t: 'done', reports });
process.disconnect?.();
