import { activatedDaemon } from './activated-daemon.js';

// systemd-localed: SetLocale writes the locale file under /etc (the overlay); the keyboard setters
// would ask systemd to restart vconsole-setup, which is not here.
export const localed = activatedDaemon({
  name: 'localed',
  busName: 'org.freedesktop.locale1',
  candidates: ['/usr/lib/systemd/systemd-localed', '/lib/systemd/systemd-localed'],
  confine: [],
  etcVariable: 'OP_DBUS_SANDBOX_LOCALED_ETC',
});
