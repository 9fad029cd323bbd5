/**
 * @fileoverview One abi-fuzz worker process (campaign.ts forks one per job): runs its range of
 * cases on its own machine and reports progress and the result to the parent over IPC.
 */
import { runRange, type CampaignOptions } from './campaign.ts';

const { opts, start, end } = JSON.parse(process.argv[2]!) as { opts: CampaignOptions; start: number; end: number };
const send = (m: unknown): Promise<void> => new Promise((resolve) => { process.send!(m, () => resolve()); });
const report = await runRange({ ...opts, onProgress: (p) => { process.send!({ t: 'progress', p }); } }, start, end);
await send({ t: 'done', report });
process.disconnect?.();
