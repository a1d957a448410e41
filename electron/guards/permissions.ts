/**
 * The console needs no browser permission (camera, notifications, clipboard read, HID, ...):
 * every permission request and check is denied. Saving a file falls back to a download.
 */
export function decidePermission(_permission: string): false {
  return false;
}
