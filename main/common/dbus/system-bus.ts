import { OpError } from '../contract/index.js';

/**
 * The system bus's address where DBUS_SYSTEM_BUS_ADDRESS is unset: the one path that both the client's
 * connection and the witness's record name the host by (/var/run is a symlink to /run, but the witness
 * keys its record by the text, so two spellings were two hosts).
 */
export const SYSTEM_BUS_ADDRESS = 'unix:path=/run/dbus/system_bus_socket';

/**
 * The bus that names the host: DBUS_SYSTEM_BUS_ADDRESS when set, else the system bus. Set but empty
 * is an error: dbus-next would take it as unset and look for a session bus through DISPLAY.
 */
export function systemBusAddress(env: NodeJS.ProcessEnv = process.env): string {
  const address = env['DBUS_SYSTEM_BUS_ADDRESS'];
  if (address === undefined) return SYSTEM_BUS_ADDRESS;
  if (address.trim() === '') {
    throw new OpError(
      'InvalidArgument',
      `DBUS_SYSTEM_BUS_ADDRESS is set but empty: unset it to use the system bus (${SYSTEM_BUS_ADDRESS}), or set it to a D-Bus address such as the one \`op-dbus sandbox up\` prints (unix:path=DIR/system_bus_socket)`,
    );
  }
  return address;
}
