// readTopology on the machine running the tests.

import { existsSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { describe, expect, it } from 'vitest';

import { topologyJson, topologyText } from './output.js';
import { readTopology } from './sysfs-reader.js';

describe('readTopology on this host', () => {
  it.skipIf(!existsSync('/sys/devices/system/cpu'))(
    'finds at least one node and every online CPU in /sys',
    () => {
      const topology = readTopology('/sys');
      console.log(topologyText(topology));
      expect(topology.nodes.length).toBeGreaterThanOrEqual(1);
      // availableParallelism is smaller under a CPU affinity mask; os.cpus() lists every online CPU.
      const onlineElsewhere = cpus().length;
      expect([availableParallelism(), onlineElsewhere]).toContain(topology.onlineCpus.length);
      if (onlineElsewhere > 0) expect(topology.onlineCpus.length).toBe(onlineElsewhere);
      const online = new Set(topology.onlineCpus);
      const json = topologyJson(topology);
      expect(json.nodes.flatMap((node) => node.cpus).toSorted((a, b) => a - b)).toEqual(topology.onlineCpus);
      expect(json.packages.flatMap((cpuPackage) => cpuPackage.cpus).toSorted((a, b) => a - b)).toEqual(
        topology.onlineCpus,
      );
      expect(json.cores.flatMap((core) => core.cpus).toSorted((a, b) => a - b)).toEqual(topology.onlineCpus);
      for (const cache of json.caches) expect(cache.cpus.every((cpu) => online.has(cpu))).toBe(true);
    },
  );
});
