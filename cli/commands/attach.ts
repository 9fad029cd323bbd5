/**
 * @fileoverview `prog attach id N [fentry|fexit]`, `prog detach id N`, `link detach id N` and what
 * `link show` reads. A fentry/fexit program is attached as the machine's kernel does it: from the
 * 5.12 profile with BPF_LINK_CREATE (attach_type = the program's expected attach type; tracing
 * links are 5.10's), whose link has an id that `prog attach` prints and `link show` lists; under
 * 5.5 and 5.7 with BPF_RAW_TRACEPOINT_OPEN, as libbpf did then — an fd, no link id, and no
 * link commands (`link show` reports the kernel's -EINVAL). The link's fd belongs to the session, as to the
 * process that attached (bpftool would pin it): in a batch file or the shell the attachment lives
 * until `prog detach` / `link detach` (BPF_LINK_DETACH, then the owning fd is closed, so the link
 * and its id go) or the end of the session; a single invocation's machine goes with the command.
 */
import {
  BPF_RAW_TRACEPOINT_OPEN, BPF_LINK_CREATE, BPF_LINK_DETACH, BPF_LINK_GET_FD_BY_ID, BPF_LINK_GET_NEXT_ID, BPF_OBJ_GET_INFO_BY_FD, BPF_PROG_GET_FD_BY_ID,
} from '../../bpf/syscall/attr.ts';
import { LINK_INFO_SIZE } from '../../bpf/syscall/info.ts';
import { BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, BPF_TRACE_FEXIT, PROG_TYPES } from '../../bpf/prog_types.ts';
import { closeFd, strerror, strtoul, isPrefix } from './map_elem.ts';
import { UsageError } from '../output.ts';
import type { System } from '../../index.ts';

/** libbpf's attach type names (libbpf_bpf_attach_type_str) for what links here carry. */
export const ATTACH_TYPE_NAMES: Record<number, string> = { [BPF_TRACE_FENTRY]: 'trace_fentry', [BPF_TRACE_FEXIT]: 'trace_fexit', 26: 'modify_return' };
/** libbpf_bpf_link_type_str. */
const LINK_TYPE_NAMES: Record<number, string> = { 1: 'raw_tracepoint', 2: 'tracing', 3: 'cgroup', 4: 'iter', 5: 'netns', 6: 'xdp' };

/** The links the session attached (link id → its owning fd), per machine. */
const owned = new WeakMap<System, Map<number, number>>();
const ownedOf = (sys: System): Map<number, number> => {
  let m = owned.get(sys);
  if (!m) owned.set(sys, (m = new Map()));
  return m;
};
/** Before tracing links (5.5, 5.7): the raw tracepoint fds the session holds, by program id. */
const rawTp = new WeakMap<System, Map<number, number>>();
const rawTpOf = (sys: System): Map<number, number> => {
  let m = rawTp.get(sys);
  if (!m) rawTp.set(sys, (m = new Map()));
  return m;
};

/** `id N` (any prefix of "id", as bpftool's prog_parse_fd / link_parse_fd); the words after it. */
export function parseIdWords(words: string[], what: string): { id: number; rest: string[] } {
  if (words.length < 2 || !isPrefix(words[0]!, 'id')) throw new UsageError(`expected 'id N' after ${what}, got '${words.join(' ')}'`);
  const id = strtoul(words[1]!, 0);
  if (id === undefined || words[1] === '' || id > 0xffffffffn) throw new UsageError(`can't parse ${words[1]} as ID`);
  return { id: Number(id), rest: words.slice(2) };
}

/** What `prog attach` made: link_id is null under a kernel without tracing links (an fd only). */
export interface Attached { link_id: number | null; prog_id: number; attach_type: string; func: string }

/** BPF_LINK_CREATE (or v5.5's BPF_RAW_TRACEPOINT_OPEN) for program `progId` (its fd from the id, closed after); the link's fd is kept by the session. */
export function attachProg(sys: System, progId: number, type: string | undefined): Attached {
  const b = sys.bpfSys;
  const pfd = b.call(BPF_PROG_GET_FD_BY_ID, { start_id: progId }).ret;
  if (pfd < 0) throw new Error(`get by id (${progId}): ${strerror(pfd)}`);
  let lfd: number;
  const p = b.progFromFd(pfd)!;
  try {
    const eat = p.expectedAttachType;
    if (type !== undefined) {
      const want = { fentry: BPF_TRACE_FENTRY, trace_fentry: BPF_TRACE_FENTRY, fexit: BPF_TRACE_FEXIT, trace_fexit: BPF_TRACE_FEXIT }[type];
      if (want === undefined) throw new UsageError(`invalid attach type '${type}': expected fentry or fexit`);
      if (want !== eat) throw new UsageError(`prog ${progId} was loaded for ${ATTACH_TYPE_NAMES[eat] ?? `attach type ${eat}`}, not ${ATTACH_TYPE_NAMES[want]}`);
    }
    lfd = sys.kernel.profile.bpf.tracingLinkCreate ? b.call(BPF_LINK_CREATE, { prog_fd: pfd, target_fd: 0, attach_type: eat }).ret
      : b.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: pfd }).ret;
    if (lfd < 0) {
      const why = p.type !== BPF_PROG_TYPE_TRACING ? ` (prog ${progId} is ${PROG_TYPES[p.type]?.name ?? p.type}: only fentry/fexit programs attach here)`
        : lfd === -16 || p.linked ? ` (prog ${progId} is already attached)` : '';
      throw new Error(`failed to attach prog ${progId}: ${strerror(lfd)}${why}`);
    }
  } finally { closeFd(sys, pfd); }
  const link = b.linkFromFd(lfd);
  if (link) ownedOf(sys).set(link.id, lfd);
  else rawTpOf(sys).set(progId, lfd);
  return { link_id: link ? link.id : null, prog_id: progId, attach_type: ATTACH_TYPE_NAMES[p.expectedAttachType] ?? String(p.expectedAttachType), func: p.trampoline?.func.name ?? '' };
}

/** bpftool link detach: BPF_LINK_DETACH on an fd from the id; the session's own fd on it is closed too. */
export function detachLink(sys: System, linkId: number): void {
  const b = sys.bpfSys;
  const fd = b.call(BPF_LINK_GET_FD_BY_ID, { start_id: linkId }).ret;
  if (fd < 0) throw new Error(`failed to get link with ID ${linkId}: ${strerror(fd)}`);
  const r = b.call(BPF_LINK_DETACH, { link_fd: fd }).ret;
  closeFd(sys, fd);
  if (r < 0) throw new Error(`failed link detach: ${strerror(r)}`);
  const own = ownedOf(sys), ofd = own.get(linkId);
  if (ofd !== undefined) { own.delete(linkId); closeFd(sys, ofd); }
}

/** prog detach: every live link of the program; an error when it has none. Returns the links' ids. */
export function detachProg(sys: System, progId: number): number[] {
  const b = sys.bpfSys;
  if (!b.progs.find(progId)) throw new Error(`get by id (${progId}): No such file or directory`);
  const raw = rawTpOf(sys).get(progId);
  if (raw !== undefined) { rawTpOf(sys).delete(progId); closeFd(sys, raw); return []; } // the raw tracepoint's release unlinks
  const ids = [...b.links.values()].filter((l) => l.prog.id === progId && l.release !== undefined).map((l) => l.id);
  if (ids.length === 0) throw new Error(`failed prog detach: No such file or directory (prog ${progId} is not attached)`);
  for (const id of ids) detachLink(sys, id);
  return ids;
}

export interface LinkShown { id: number; type: string | number; prog_id: number; prog_type?: string | number; attach_type?: string | number }

/** Every link (or one), as bpftool's link show reads them: GET_NEXT_ID, GET_FD_BY_ID, OBJ_GET_INFO_BY_FD. */
export function showLinks(sys: System, only?: number): LinkShown[] {
  const b = sys.bpfSys, mem = sys.kernel.machine.mem;
  const ids: number[] = [];
  if (only !== undefined) ids.push(only);
  else for (let id = 0; ;) {
    const r = b.call(BPF_LINK_GET_NEXT_ID, { start_id: id });
    if (r.ret === -2) break; // -ENOENT: no more
    if (r.ret < 0) throw new Error(`can't get next link: ${strerror(r.ret)}`); // 5.5, 5.7: no such command
    ids.push((id = r.attr.next_id as number));
  }
  const buf = b.stage(new Uint8Array(LINK_INFO_SIZE));
  try {
    return ids.map((id) => {
      const fd = b.call(BPF_LINK_GET_FD_BY_ID, { start_id: id }).ret;
      if (fd < 0) throw new Error(`failed to get link with ID ${id}: ${strerror(fd)}`);
      try {
        mem.write(buf, new Uint8Array(LINK_INFO_SIZE));
        const r = b.call(BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: fd, info_len: LINK_INFO_SIZE, info: buf });
        if (r.ret < 0) throw new Error(`can't get link info: ${strerror(r.ret)}`);
        const dv = new DataView(mem.read(buf, LINK_INFO_SIZE).buffer);
        const type = dv.getUint32(0, true), progId = dv.getUint32(8, true);
        const shown: LinkShown = { id: dv.getUint32(4, true), type: LINK_TYPE_NAMES[type] ?? type, prog_id: progId };
        if (type === 2) {
          const pt = b.progs.find(progId)?.type;
          if (pt !== undefined) shown.prog_type = PROG_TYPES[pt]?.name ?? pt;
          const at = dv.getUint32(16, true);
          shown.attach_type = ATTACH_TYPE_NAMES[at] ?? at;
        }
        return shown;
      } finally { closeFd(sys, fd); }
    });
  } finally { b.unstage(buf); }
}

/** show_link_close_plain for the link types here. */
export function linkText(l: LinkShown): string {
  const head = `${l.id}: ${typeof l.type === 'string' ? l.type : `type ${l.type}`}  prog ${l.prog_id}  `;
  if (l.attach_type === undefined) return head;
  const pt = l.prog_type === undefined ? '' : `\n\tprog_type ${l.prog_type}  `;
  return `${head}${pt}attach_type ${l.attach_type}  `;
}
