import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

/** One tool invocation that reached the demo server (tests use this to prove denied calls did not). */
export interface CallRecord {
  tool: string;
  args: Record<string, unknown>;
  authorization: string | null;
  at: string;
}

const DOCS = [
  { id: 'refunds', title: 'Refund policy', text: 'Refunds are issued within 14 days to the original payment method.' },
  { id: 'chargebacks', title: 'Handling chargebacks', text: 'Respond to a chargeback within 7 days with the order evidence.' },
  { id: 'api-keys', title: 'Rotating API keys', text: 'Rotate payment API keys every 90 days from the dashboard.' },
];

const CUSTOMERS: Record<string, { name: string; plan: string; balance_cents: number }> = {
  'cus_1001': { name: 'Ada Lovelace', plan: 'enterprise', balance_cents: 125000 },
  'cus_1002': { name: 'Alan Turing', plan: 'team', balance_cents: 0 },
};

const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });

/**
 * A realistic small tool set: read-only lookups, a write, a destructive call and a SQL tool, with
 * the annotations a real server would declare.
 */
export function registerDemoTools(server: McpServer, onCall: (tool: string, args: Record<string, unknown>) => void): void {
  server.registerTool('search_docs', {
    title: 'Search documentation',
    description: 'Full-text search over the payments handbook.',
    inputSchema: { query: z.string().min(1).max(500) },
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, async ({ query }) => {
    onCall('search_docs', { query });
    const q = query.toLowerCase();
    const hits = DOCS.filter((d) => d.title.toLowerCase().includes(q) || d.text.toLowerCase().includes(q));
    return text(hits.length ? hits.map((d) => `${d.title}: ${d.text}`).join('\n') : `No documents match "${query}".`);
  });

  server.registerTool('get_customer', {
    title: 'Get customer',
    description: 'Look up a customer by id (cus_NNNN).',
    inputSchema: { customer_id: z.string() },
    annotations: { readOnlyHint: true },
  }, async ({ customer_id }) => {
    onCall('get_customer', { customer_id });
    const c = CUSTOMERS[customer_id];
    return c ? text(JSON.stringify({ id: customer_id, ...c })) : { ...text(`No customer ${customer_id}.`), isError: true };
  });

  let nextTicket = 5000;
  server.registerTool('create_ticket', {
    title: 'Create support ticket',
    description: 'Open a support ticket.',
    inputSchema: { title: z.string().min(1), body: z.string(), priority: z.enum(['low', 'normal', 'high', 'urgent']) },
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false },
  }, async (args) => {
    onCall('create_ticket', args);
    return text(`Created ticket T-${nextTicket++} (${args.priority}): ${args.title}`);
  });

  server.registerTool('delete_records', {
    title: 'Delete records',
    description: 'Delete rows from a table. Irreversible.',
    inputSchema: { table: z.string(), where: z.string() },
    annotations: { destructiveHint: true, idempotentHint: true },
  }, async (args) => {
    onCall('delete_records', args);
    return text(`Deleted rows from ${args.table} where ${args.where}.`);
  });

  server.registerTool('run_sql', {
    title: 'Run SQL',
    description: 'Run a SQL query against the reporting replica.',
    inputSchema: { query: z.string() },
    annotations: { readOnlyHint: false, openWorldHint: false },
  }, async ({ query }) => {
    onCall('run_sql', { query });
    return text(`Query ran: ${query}\n(3 rows)`);
  });
}
