import { activatedDaemon } from './activated-daemon.js';

// systemd-timedated, confined so that it can never change this machine's clock: SetTimezone writes
// /etc/localtime (into the overlay) and then tells the kernel the zone with settimeofday(), SetTime
// and SetLocalRTC set the system clock or the RTC; all three need CAP_SYS_TIME, which setpriv takes
// out of its bounding set (timedated logs the kernel's refusal and goes on). SetNTP would ask
// systemd to start timesyncd: there is no systemd on the host, so it fails.
export const timedated = activatedDaemon({
  name: 'timedated',
  busName: 'org.freedesktop.timedate1',
  candidates: ['/usr/lib/systemd/systemd-timedated', '/lib/systemd/systemd-timedated'],
  confine: ['setpriv', '--bounding-set', '-sys_time'],
  etcVariable: 'OP_DBUS_SANDBOX_TIMEDATED_ETC',
});
