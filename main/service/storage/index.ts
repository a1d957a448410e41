// Public API of the data dir's storage layout (issue 6): filesystem detection, the BTRFS-aware
// layout, and plugin-state snapshots for rollback.

export { BtrfsCommand, isSubvolumeRoot } from './btrfs.js';
export { StorageError, type StorageErrorReason } from './errors.js';
export { filesystemOf, parseMountInfo, type FilesystemInfo, type MountEntry } from './filesystem.js';
export {
  STORAGE_PARTS,
  prepareDataDir,
  type PartState,
  type StorageLayout,
  type StorageOptions,
  type StoragePart,
} from './layout.js';
export { PluginStateSnapshots, type PluginSnapshot } from './snapshots.js';
