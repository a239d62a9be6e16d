import { strict as assert } from 'node:assert';
import { Registry } from 'prom-client';
import { MAX_LABEL_CHARS, registerCallMetrics } from '../../../src/metrics/mcp-metrics.js';

const seriesOf = (text: string, name: string): string[] => text.split('\n').filter((l) => l.startsWith(`${name}{`));

describe('per-call metrics with bounded cardinality', () => {
  it('caps tool names from callers, cuts long values, and folds unknown methods into "other"', async () => {
    const registry = new Registry();
    const m = registerCallMetrics(registry, 'tollgate_', { maxTools: 10, maxTeams: 3 });
    for (let i = 0; i < 1000; i++) m.recordCall({ server: 's', method: 'tools/call', tool: `tool-${i}`, team: `team-${i % 5}`, allow: i % 2 === 0, code: i % 2 ? -32003 : null });
    m.recordCall({ server: 's', method: 'tools/call', tool: 'x'.repeat(10_000), team: null, allow: true, code: null });
    m.recordCall({ server: 's', method: 'made/up/method', tool: 'ignored', team: null, allow: true, code: null });
    const text = await registry.metrics();
    const calls = seriesOf(text, 'tollgate_mcp_calls_total');
    const tools = new Set(calls.map((l) => /tool="([^"]*)"/.exec(l)![1]));
    assert.ok(tools.size <= 12, `${tools.size} tool values`); // 10 tools, "other", "" for non-tools/call
    assert.ok(tools.has('other'));
    const teams = new Set(calls.map((l) => /team="([^"]*)"/.exec(l)![1]));
    assert.deepEqual([...teams].sort(), ['', 'other', 'team-0', 'team-1', 'team-2']);
    assert.ok(calls.some((l) => l.includes('method="other"') && l.includes('tool=""')), 'unknown method is "other" and names no tool');
    assert.ok(calls.every((l) => l.length < 2 * MAX_LABEL_CHARS + 200));
    const total = calls.reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    assert.equal(total, 1002, 'nothing is dropped, only folded');
  });

  it('caps label combinations as a whole', async () => {
    const registry = new Registry();
    const m = registerCallMetrics(registry, 'tollgate_', { maxTools: 1000, maxTeams: 1000, maxSeries: 50 });
    for (let i = 0; i < 500; i++) m.recordCall({ server: 's', method: 'tools/call', tool: `t${i}`, team: `team${i}`, allow: true, code: null });
    const calls = seriesOf(await registry.metrics(), 'tollgate_mcp_calls_total');
    assert.equal(calls.length, 51);
    assert.ok(calls.some((l) => l.startsWith('tollgate_mcp_calls_total{server="other",method="other",tool="other",team="other",decision="other"} 450')));
  });

  it('exposes mcp_server_operation_duration_seconds as a histogram with the conventions\' attribute names', async () => {
    const registry = new Registry();
    const m = registerCallMetrics(registry, 'tollgate_');
    m.recordOperation({ method: 'tools/call', tool: 'get_weather', errorType: null, seconds: 0.3 });
    m.recordOperation({ method: 'tools/call', tool: 'delete', errorType: -32003, seconds: 0.0002 });
    const text = await registry.metrics();
    assert.match(text, /# TYPE mcp_server_operation_duration_seconds histogram/);
    assert.match(text, /mcp_server_operation_duration_seconds_bucket\{mcp_method_name="tools\/call",gen_ai_tool_name="get_weather",error_type="",le="0.2"\} 0/);
    assert.match(text, /mcp_server_operation_duration_seconds_bucket\{mcp_method_name="tools\/call",gen_ai_tool_name="get_weather",error_type="",le="0.5"\} 1/);
    assert.match(text, /mcp_server_operation_duration_seconds_count\{mcp_method_name="tools\/call",gen_ai_tool_name="delete",error_type="-32003"\} 1/);
    assert.match(text, /mcp_server_operation_duration_seconds_sum\{mcp_method_name="tools\/call",gen_ai_tool_name="get_weather",error_type=""\} 0.3/);
  });
});
