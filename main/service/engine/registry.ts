import { OpError } from '../../common/contract/index.js';
import type { JsonSchema } from '../../sdk/index.js';
import type { PluginRecord, PluginRefusal } from '../plugins/discover.js';
import { orderPlugins } from '../plugins/order.js';
import { compileSection, type SectionValidator } from '../plugins/section-schema.js';
import type { ParsedDocument } from './document.js';

/** A plugin the engine can plan with: its record, its compiled schema and the plugins it comes after. */
export interface RegisteredPlugin extends PluginRecord {
  /** The plugins it declared in `after` that are installed. */
  after: string[];
  /** `after` entries naming plugins that are not installed (a note, not an error). */
  missingAfter: string[];
  validate: SectionValidator;
}

/** A plugin that was found but cannot be planned with, and why. */
export interface BlockedPlugin {
  record: PluginRecord;
  code: 'DependencyCycle' | 'SchemaError';
  reason: string;
}

/** The plugins the core knows, in the order their changes are applied (each after its `after`). */
export class PluginRegistry {
  private readonly plugins = new Map<string, RegisteredPlugin>();
  private readonly blockedPlugins = new Map<string, BlockedPlugin>();

  constructor(
    records: readonly PluginRecord[],
    readonly refused: readonly PluginRefusal[] = [],
  ) {
    const compiled: { record: PluginRecord; validate: SectionValidator }[] = [];
    for (const record of records) {
      try {
        compiled.push({ record, validate: compileSection(record.name, record.schema) });
      } catch (e) {
        this.blockedPlugins.set(record.name, {
          record,
          code: 'SchemaError',
          reason: e instanceof Error ? e.message : String(e),
        });
      }
    }
    const { order, cycles, missing } = orderPlugins(
      compiled.map(({ record }) => ({ name: record.name, after: record.manifest.dependencies.plugins })),
    );
    const byName = new Map(compiled.map((c) => [c.record.name, c]));
    for (const [name, reason] of cycles) {
      const c = byName.get(name);
      if (c !== undefined)
        this.blockedPlugins.set(name, { record: c.record, code: 'DependencyCycle', reason });
    }
    for (const name of order) {
      const c = byName.get(name);
      if (c === undefined) continue;
      const absent = missing.get(name) ?? [];
      this.plugins.set(name, {
        ...c.record,
        after: c.record.manifest.dependencies.plugins.filter((a) => !absent.includes(a)),
        missingAfter: absent,
        validate: c.validate,
      });
    }
  }

  /** The plugins that can be planned with, in apply order. */
  get names(): string[] {
    return [...this.plugins.keys()];
  }

  get(name: string): RegisteredPlugin | undefined {
    return this.plugins.get(name);
  }

  get blocked(): BlockedPlugin[] {
    return [...this.blockedPlugins.values()];
  }

  /** The plugin's section schema as JSON Schema (what editors and redaction read). */
  jsonSchema(name: string): JsonSchema | undefined {
    return this.plugins.get(name)?.schema;
  }

  /** One schema for the whole document, composed from every plugin's section schema. */
  documentSchema(): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    for (const [name, { schema }] of this.plugins) {
      const { $schema: _drop, $id: _id, ...rest } = schema;
      properties[name] = rest;
    }
    return {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: 'operation-dbus desired state',
      type: 'object',
      required: ['version', 'plugins'],
      additionalProperties: false,
      properties: {
        $schema: { type: 'string' },
        version: { const: 1 },
        plugins: { type: 'object', additionalProperties: false, properties },
      },
    };
  }

  /** Validates every section a document names; the map is in apply order. Errors name the pointer and its position. */
  validate(parsed: ParsedDocument): Map<string, unknown> {
    for (const name of Object.keys(parsed.doc.plugins)) {
      if (this.plugins.has(name)) continue;
      const where = parsed.where(`/plugins/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`, name);
      const blocked = this.blockedPlugins.get(name);
      if (blocked !== undefined) {
        throw new OpError(blocked.code, `plugin ${name} cannot be planned: ${blocked.reason}`, where);
      }
      throw new OpError(
        'UnknownPlugin',
        `unknown plugin "${name}" (known: ${this.names.join(', ') || 'none'})`,
        where,
      );
    }
    const sections = new Map<string, unknown>();
    for (const [name, plugin] of this.plugins) {
      if (!Object.hasOwn(parsed.doc.plugins, name)) continue;
      const section = parsed.doc.plugins[name];
      const problem = plugin.validate(section);
      if (problem !== undefined) {
        throw new OpError(
          'SchemaError',
          problem.message,
          parsed.where(`/plugins/${name}${problem.pointer}`, name),
        );
      }
      sections.set(name, section);
    }
    return sections;
  }
}
