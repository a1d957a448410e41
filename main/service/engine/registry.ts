import { z } from 'zod';
import { OpError } from '../../common/contract/index.js';
import { issuePointer, type ParsedDocument } from './document.js';
import type { AnyStatePlugin } from './plugin.js';

/** JSON Schema as published to editors. */
export type JsonSchema = Record<string, unknown>;

/** The plugins the core knows, in the order their changes are applied. */
export class PluginRegistry {
  private readonly plugins = new Map<string, AnyStatePlugin>();
  private readonly jsonSchemas = new Map<string, JsonSchema>();

  constructor(plugins: readonly AnyStatePlugin[]) {
    for (const p of plugins) {
      if (this.plugins.has(p.name)) throw new OpError('Internal', `plugin ${p.name} registered twice`);
      this.plugins.set(p.name, p);
      this.jsonSchemas.set(p.name, z.toJSONSchema(p.schema, { io: 'input' }) as JsonSchema);
    }
  }

  get names(): string[] {
    return [...this.plugins.keys()];
  }

  get(name: string): AnyStatePlugin | undefined {
    return this.plugins.get(name);
  }

  /** The plugin's section schema as JSON Schema (what editors and redaction read). */
  jsonSchema(name: string): JsonSchema | undefined {
    return this.jsonSchemas.get(name);
  }

  /** One schema for the whole document, composed from every plugin's section schema. */
  documentSchema(): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    for (const [name, schema] of this.jsonSchemas) {
      const { $schema: _drop, ...rest } = schema;
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

  /** Validates every section a document names, in registry order; errors name the pointer and its position. */
  validate(parsed: ParsedDocument): Map<string, unknown> {
    const sections = new Map<string, unknown>();
    for (const name of Object.keys(parsed.doc.plugins)) {
      if (!this.plugins.has(name)) {
        throw new OpError(
          'UnknownPlugin',
          `unknown plugin "${name}" (known: ${this.names.join(', ') || 'none'})`,
          parsed.where(`/plugins/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`, name),
        );
      }
    }
    for (const [name, plugin] of this.plugins) {
      if (!Object.hasOwn(parsed.doc.plugins, name)) continue;
      const result = plugin.schema.safeParse(parsed.doc.plugins[name]);
      if (!result.success) {
        const issue = result.error.issues[0];
        const base = `/plugins/${name}`;
        const pointer = issue === undefined ? base : issuePointer(base, issue);
        throw new OpError('SchemaError', issue?.message ?? 'invalid section', parsed.where(pointer, name));
      }
      sections.set(name, result.data);
    }
    return sections;
  }
}
