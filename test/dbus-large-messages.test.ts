import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dbus from 'dbus-next';
import { BUS_NAME, INTERFACE_NAME, OBJECT_PATH } from '../main/common/contract/index.js';
import { callMethod, connectBus, disconnectBus, type MessageBus } from '../main/common/dbus/calls.js';
import { TestSandbox } from './support/sandbox.js';

// Through dbus-next's optional native socket (usocket), a reply over ~210 KB never left the sender
// and stalled its connection; the project replaces usocket (build/npm/usocket-disabled) so dbus-next
// uses net.Socket. A large audit page or plan must reach the client, and the connection stay alive.
let sb: TestSandbox;
let service: MessageBus;
let client: MessageBus;

beforeAll(async () => {
  sb = await TestSandbox.start({ core: false });
  service = await connectBus(sb.env.DBUS_SYSTEM_BUS_ADDRESS);
  client = await connectBus(sb.env.DBUS_SYSTEM_BUS_ADDRESS);
  await service.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE);
  service.addMethodHandler((msg: dbus.Message) => {
    const size = Number(JSON.parse(msg.body[0] as string));
    if (size < 0) return true; // taken, never answered
    service.send(dbus.Message.newMethodReturn(msg, 's', ['x'.repeat(size)]));
    return true;
  });
});
afterAll(async () => {
  service?.disconnect();
  client?.disconnect();
  await sb?.stop();
});

describe('large D-Bus messages', () => {
  it('uses net.Socket, not usocket', () => {
    const stream = (client as unknown as { _connection: { stream: object } })._connection.stream;
    expect(stream.constructor.name).toBe('Socket');
  });

  for (const size of [100_000, 220_000, 4_000_000]) {
    it(`a ${size}-character reply arrives, and the connection still answers after it`, async () => {
      const call = {
        destination: BUS_NAME,
        path: OBJECT_PATH,
        interface: INTERFACE_NAME,
        member: 'Query',
        signature: 's',
      };
      const [reply] = await callMethod(client, { ...call, body: [JSON.stringify(size)], timeoutMs: 10_000 });
      expect((reply as string).length).toBe(size);
      const [small] = await callMethod(client, { ...call, body: ['3'], timeoutMs: 5_000 });
      expect(small).toBe('xxx');
    });
  }

  it('a call still waiting when its connection is closed fails at once, not at its timeout', async () => {
    const own = await connectBus(sb.env.DBUS_SYSTEM_BUS_ADDRESS);
    const waiting = callMethod(own, {
      destination: BUS_NAME,
      path: OBJECT_PATH,
      interface: INTERFACE_NAME,
      member: 'Query',
      signature: 's',
      body: ['-1'],
      // ten minutes, as an Apply's: its timer would keep a closed client's process alive that long
      timeoutMs: 600_000,
    });
    await new Promise((r) => setTimeout(r, 100));
    disconnectBus(own);
    await expect(waiting).rejects.toThrow(/connection to the bus was closed before the answer came/);
  });
});
