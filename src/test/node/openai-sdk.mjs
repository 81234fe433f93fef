// The official OpenAI Node SDK against `calm serve`: node openai-sdk.mjs BASE_URL MODEL_ID
// Exits non-zero (an assertion's message on stderr) at the first call that does not behave as the API says.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
const messages = [{ role: 'system', content: 'The people of this nation' },
                  { role: 'user', content: 'Our union is strong and' }];
const report = {};

const card = await client.models.retrieve(model);
assert.equal(card.id, model);
report.models_retrieve = card.id;
report.models_list = (await client.models.list()).data.map(m => m.id);

const chat = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0.7, seed: 5, n: 2 });
assert.equal(chat.object, 'chat.completion');
assert.equal(chat.choices.length, 2);
for (const c of chat.choices) assert.equal(c.message.role, 'assistant');
assert.ok(chat.usage.completion_tokens > 0 && chat.usage.completion_tokens <= 24);
report.chat = chat.choices.map(c => [c.message.content, c.finish_reason]);

const again = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0.7, seed: 5, n: 2 });
assert.deepEqual(again.choices.map(c => c.message.content), chat.choices.map(c => c.message.content), 'same seed');

let streamed = '', finish = null, usage = null, chunks = 0;
const stream = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0.7, seed: 5,
  stream: true, stream_options: { include_usage: true } });
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    streamed += c.delta.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.equal(streamed, chat.choices[0].message.content, 'the stream makes the same reply');
assert.equal(finish, chat.choices[0].finish_reason);
assert.deepEqual(usage, { prompt_tokens: chat.usage.prompt_tokens, completion_tokens: usage.completion_tokens,
  total_tokens: chat.usage.prompt_tokens + usage.completion_tokens });
report.chat_stream = { text: streamed, chunks, finish, usage };

const full = await client.completions.create({ model, prompt: 'the', max_tokens: 40, seed: 3 });
const text = full.choices[0].text;
const stop = text.slice(5, 12);
const cut = await client.completions.create({ model, prompt: 'the', max_tokens: 40, seed: 3, stop: [stop, '@@'] });
assert.equal(cut.choices[0].text, text.slice(0, text.indexOf(stop)));
assert.equal(cut.choices[0].finish_reason, 'stop');
report.stop = { stop, text: cut.choices[0].text };

const lists = await client.completions.create({ model, prompt: ['the', 'our union'], n: 2, max_tokens: 8, seed: 1 });
assert.deepEqual(lists.choices.map(c => c.index), [0, 1, 2, 3]);
const ids = await client.completions.create({ model, prompt: [5, 6, 7], max_tokens: 8 });
assert.equal(ids.usage.prompt_tokens, 3);
report.prompt_lists = lists.choices.map(c => c.text);

let refused = null;
try {
  await client.completions.create({ model, prompt: 'the', logprobs: 2 });
} catch (e) {
  refused = [e.status, e.message];
}
assert.equal(refused?.[0], 400);
report.logprobs_refused = refused;

console.log(JSON.stringify(report, null, 1));
