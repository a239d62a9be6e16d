import type { ToolEntry } from '../../../src/discovery/catalog.js';

/** A small fixed catalogue across three servers, with near-misses on purpose. */
export const CATALOG: ToolEntry[] = [
  { server: 'fs', name: 'read_file', description: 'Read the complete contents of a file from the file system.', inputSchema: { type: 'object', properties: { path: { type: 'string', description: 'Path of the file' } } } },
  { server: 'fs', name: 'write_file', description: 'Create a new file or overwrite an existing file with new content.', inputSchema: { type: 'object', properties: { path: { type: 'string' }, content: { type: 'string' } } } },
  { server: 'fs', name: 'list_directory', description: 'List the files and subdirectories in a directory.', inputSchema: { type: 'object', properties: { path: { type: 'string' } } } },
  { server: 'fs', name: 'move_file', description: 'Move or rename files and directories.', inputSchema: { type: 'object', properties: { source: { type: 'string' }, destination: { type: 'string' } } } },
  { server: 'weather', name: 'get_forecast', description: 'Weather forecast for a city for the next days: temperature, rain, wind.', inputSchema: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } } } },
  { server: 'weather', name: 'get_alerts', description: 'Active severe weather alerts (storms, floods) for a US state.', inputSchema: { type: 'object', properties: { state: { type: 'string', description: 'Two-letter US state code' } } } },
  { server: 'db', name: 'run_sql', description: 'Run a read-only SQL query against the orders database and return rows.', inputSchema: { type: 'object', properties: { sql: { type: 'string' } } } },
  { server: 'db', name: 'delete_records', description: 'Delete records from a table by id. Destructive.', inputSchema: { type: 'object', properties: { table: { type: 'string' }, ids: { type: 'array', items: { type: 'string' } } } }, annotations: { destructiveHint: true } },
  { server: 'time', name: 'get_current_time', description: 'Current time in a given IANA time zone.', inputSchema: { type: 'object', properties: { timezone: { type: 'string' } } } },
  { server: 'time', name: 'convert_time', description: 'Convert a time between two time zones.', inputSchema: { type: 'object', properties: { source_timezone: { type: 'string' }, time: { type: 'string' }, target_timezone: { type: 'string' } } } },
];
