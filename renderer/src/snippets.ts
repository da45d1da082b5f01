/** Copy-paste snippets that point tools at the local Tollgate proxy. */
export interface Snippet {
  id: string;
  label: string;
  code: string;
  lang: string;
}

export function openAiSnippet(proxyUrl: string, token = 'tgk_…'): string {
  return `import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: '${proxyUrl}/openai/v1',
  apiKey: process.env.TOLLGATE_KEY, // a tgk_ key (or your real key)
  defaultHeaders: { 'x-tollgate-project': 'my-project' },
});

const res = await client.chat.completions.create({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Hello through Tollgate' }],
});
console.log(res.choices[0].message.content);`;
}

export function snippets(proxyUrl: string): Snippet[] {
  return [
    { id: 'openai', label: 'OpenAI SDK (Node / Python)', lang: 'ts', code: openAiSnippet(proxyUrl) + `

# Python
from openai import OpenAI
client = OpenAI(
    base_url="${proxyUrl}/openai/v1",
    api_key=os.environ["TOLLGATE_KEY"],
)` },
    {
      id: 'anthropic',
      label: 'Anthropic SDK',
      lang: 'ts',
      code: `import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({
  baseURL: '${proxyUrl}/anthropic',
  apiKey: process.env.TOLLGATE_KEY,
});`,
    },
    {
      id: 'gemini',
      label: 'Google Gen AI SDK (Gemini)',
      lang: 'ts',
      code: `import { GoogleGenAI } from '@google/genai';

const ai = new GoogleGenAI({
  apiKey: process.env.TOLLGATE_KEY,
  httpOptions: { baseUrl: '${proxyUrl}/gemini' },
});`,
    },
    {
      id: 'curl',
      label: 'curl',
      lang: 'sh',
      code: `curl ${proxyUrl}/openai/v1/chat/completions \\
  -H "Authorization: Bearer $TOLLGATE_KEY" \\
  -H "Content-Type: application/json" \\
  -H "x-tollgate-project: my-project" \\
  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}'`,
    },
    {
      id: 'claude-code',
      label: 'Claude Code',
      lang: 'sh',
      code: `export ANTHROPIC_BASE_URL=${proxyUrl}/anthropic
# optional: attribute the spend to a project
export ANTHROPIC_BASE_URL=${proxyUrl}/p/my-project/anthropic
claude`,
    },
    {
      id: 'cursor',
      label: 'Cursor',
      lang: 'text',
      code: `Settings → Models → OpenAI API Key: your tgk_ key (or real key)
Settings → Models → "Override OpenAI Base URL":
  ${proxyUrl}/openai/v1`,
    },
  ];
}

export function projectSnippet(proxyUrl: string): string {
  return `# Tag calls with a project, either with a header…
x-tollgate-project: acme

# …or with a path prefix (for tools that only let you set a base URL)
${proxyUrl}/p/acme/openai/v1
${proxyUrl}/p/acme/anthropic`;
}

/**
 * Every CLI command the UI shows, in one place, as plain literal strings (test/integration/shown-commands.test.ts extracts and runs
 * each one: every string here must be a real `tollgate` command, written as it runs from a checkout).
 */
export const COMMANDS = {
  serve: 'npx tollgate serve --port 7411',
  open: 'npx tollgate open',
  openPrintUrl: 'npx tollgate open --print-url',
  exportCsv: 'npx tollgate export --format csv > tollgate-calls.csv',
  exportJsonl: 'npx tollgate export --format jsonl --from 2026-11-01 --to 2026-11-30 > november.jsonl',
  reportByProject: 'npx tollgate report --by project --period month',
} as const;
