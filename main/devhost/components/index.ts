import type { HostComponent } from '../component.js';
import { bus } from './bus.js';
import { coreComponent } from './core.js';
import { hostnamed } from './hostnamed.js';
import { localed } from './localed.js';
import { lxc } from './lxc.js';
import { netns } from './netns.js';
import { ovs } from './ovs.js';
import { polkitd } from './polkitd.js';
import { timedated } from './timedated.js';
import { wireguard } from './wireguard.js';
import { packagekit } from './packagekit.js';
import { systemd1 } from './systemd1.js';

/**
 * The host's components in start order (stopped in reverse): the bus first, since every other one
 * serves on it. A new component is one module and one line here; the core always comes last, in the
 * host's network namespace (netns), with the core configuration the components contribute.
 */
export const COMPONENTS: readonly HostComponent[] = [
  bus,
  polkitd,
  hostnamed,
  timedated,
  localed,
  systemd1,
  packagekit,
  netns,
  ovs,
  lxc,
  wireguard,
];

/** Every component of the host, the core started from coreCommand (none: start it later, or never). */
export function hostComponents(coreCommand?: readonly string[]): readonly HostComponent[] {
  return [...COMPONENTS, coreComponent(coreCommand, COMPONENTS)];
}
