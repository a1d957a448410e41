import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import { resolve } from 'node:path';

// The layering of DESIGN.md section 1 is enforced by ESLint; these cases prove the rules fire.
const root = resolve(import.meta.dirname, '..');
const eslint = new ESLint({ cwd: root });

async function messages(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: resolve(root, file) });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? ''}: ${m.message}`);
}

describe('layering lint rules', () => {
  it('refuses electron and react in the core', async () => {
    expect(
      (await messages('main/service/core/x.ts', "import { app } from 'electron';\nvoid app;\n")).join(),
    ).toMatch(/never imports electron/);
    expect(
      (await messages('main/service/engine/x.ts', "import React from 'react';\nvoid React;\n")).join(),
    ).toMatch(/never imports electron or react/);
  });

  it('refuses the renderer in the core', async () => {
    const m = await messages(
      'main/service/core/x.ts',
      "import { x } from '../../renderer/app.js';\nvoid x;\n",
    );
    expect(m.join()).toMatch(/never imports the renderer/);
  });

  it('lets the renderer import the contract and nothing else of main/', async () => {
    expect(
      await messages(
        'renderer/src/x.ts',
        "import { BUS_NAME } from '../../main/common/contract/index.js';\nvoid BUS_NAME;\n",
      ),
    ).toEqual([]);
    const m = await messages(
      'renderer/src/x.ts',
      "import { StateEngine } from '../../main/service/engine/engine.js';\nvoid StateEngine;\n",
    );
    expect(m.join()).toMatch(/import only the contract/);
  });

  it('keeps the contract free of project imports', async () => {
    const m = await messages(
      'main/common/contract/x.ts',
      "import { StateEngine } from '../engine/engine.js';\nvoid StateEngine;\n",
    );
    expect(m.join()).toMatch(/contract imports nothing/);
  });

  it('lets the Electron main process use the D-Bus client, but not the preload, and nothing else of main/', async () => {
    const client =
      "import { ManagerClient } from '../main/client/dbus/manager-client.js';\nvoid ManagerClient;\n";
    expect(await messages('electron/main.ts', client)).toEqual([]);
    expect((await messages('electron/preload.ts', client)).join()).toMatch(/import only the contract/);
    const engine = "import { StateEngine } from '../main/service/engine/engine.js';\nvoid StateEngine;\n";
    expect((await messages('electron/main.ts', engine)).join()).toMatch(
      /only the contract and the D-Bus client/,
    );
  });

  it('keeps each side of main/ to its own imports: a client never imports the service', async () => {
    const engine = "import { StateEngine } from '../../service/engine/engine.js';\nvoid StateEngine;\n";
    expect((await messages('main/client/cli/x.ts', engine)).join()).toMatch(
      /a client never imports the service/,
    );
    expect((await messages('main/client/serve/x.ts', engine)).join()).toMatch(
      /a client never imports the service/,
    );
    const cli = "import { print } from '../../client/cli/io.js';\nvoid print;\n";
    expect((await messages('main/service/core/x.ts', cli)).join()).toMatch(
      /the service never imports a client/,
    );
    expect((await messages('main/common/dbus/x.ts', engine)).join()).toMatch(/imports only main\/common/);
    expect(
      (
        await messages(
          'main/devhost/x.ts',
          "import { startCore } from '../service/core/core.js';\nvoid startCore;\n",
        )
      ).join(),
    ).toMatch(/starts the core as a process/);
    const common = "import { OpError } from '../../common/contract/index.js';\nvoid OpError;\n";
    for (const file of ['main/client/cli/x.ts', 'main/service/core/x.ts'])
      expect(await messages(file, common)).toEqual([]);
    // the one composition root may import every side
    expect(
      await messages(
        'main/op-dbus.ts',
        "import { startCore } from './service/core/core.js';\nvoid startCore;\n",
      ),
    ).toEqual([]);
  });

  it('lets a plugin import the SDK and nothing else of main/', async () => {
    const sdk = "import { pointer } from '../../main/sdk/index.js';\nvoid pointer;\n";
    expect(await messages('plugins/x/index.ts', sdk)).toEqual([]);
    const engine = "import { StateEngine } from '../../main/service/engine/engine.js';\nvoid StateEngine;\n";
    expect((await messages('plugins/x/index.ts', engine)).join()).toMatch(/a plugin imports only the SDK/);
    const calls = "import { callMethod } from '../../main/common/dbus/calls.js';\nvoid callMethod;\n";
    expect((await messages('plugins/x/index.ts', calls)).join()).toMatch(/a plugin imports only the SDK/);
  });

  it('keeps Node modules out of the renderer', async () => {
    const m = await messages(
      'renderer/src/x.ts',
      "import { readFileSync } from 'node:fs';\nvoid readFileSync;\n",
    );
    expect(m.join()).toMatch(/no Node modules/);
  });
});
