// dbus-next requires usocket inside try/catch and falls back to net.Socket: this makes it do so.
// Through usocket 0.3, a reply over ~210 KB never left the core and stalled its bus connection
// (reproduced on a private bus: 210,000 characters arrive, 220,000 never do; net.Socket carries 10 MB).
throw new Error('usocket is disabled in operation-dbus: large messages stall through it');
