import type { z } from 'zod';
import type { PluginDiff } from '../../common/contract/index.js';

/** Whether a plugin can work on this host, and why not when it cannot. */
export type Availability = { available: true } | { available: false; reason: string };

/** What a plugin's apply receives besides the diff. */
export interface ApplyContext {
  readonly signal: AbortSignal;
  progress(message: string): void;
}

export interface PluginVerifyResult {
  /** Each named value that differs from the desired one. */
  drift: { path: string; expected: unknown; actual: unknown }[];
}

/**
 * A plugin manages one section of the desired-state document (DESIGN.md section 3).
 * `State` is the section's type; `Checkpoint` must be plain JSON, because the apply journal stores it.
 */
export interface StatePlugin<State = unknown, Checkpoint = unknown> {
  readonly name: string;
  readonly version: string;
  /** Validates the plugin's section; published as JSON Schema for editors. Secret fields carry `x-secret`. */
  readonly schema: z.ZodType<State>;
  available(): Promise<Availability>;
  /** The current state, normalised into the same shape as the section. */
  query(): Promise<State>;
  /** Pure: what must change to go from current to desired (only what desired names). */
  diff(current: State, desired: State): PluginDiff;
  /** Enough of the current state to undo the changes desired would make. */
  checkpoint(desired: State): Promise<Checkpoint>;
  apply(diff: PluginDiff, desired: State, ctx: ApplyContext): Promise<{ changed: number }>;
  /** Re-query and compare only what desired names. */
  verify(desired: State): Promise<PluginVerifyResult>;
  rollback(checkpoint: Checkpoint): Promise<void>;
}

/** The erased form the engine holds: state and checkpoints are JSON values it passes back unchanged. */
export type AnyStatePlugin = StatePlugin<unknown, unknown>;
