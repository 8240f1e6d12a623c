// The official openai npm client (pinned 4.x, package-lock.json) against `bitnet serve`:
// chat and completions, streaming and not. Expected greedy texts come from `bitnet run` /
// `bitnet chat` (passed in by run_openai_test.sh), never from the server.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [baseURL, apiKey, expectedRun, expectedChat, prompt, user] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

const models = await client.models.list();
assert.equal(models.data.length, 1);
const model = models.data[0].id;

const completion = await client.completions.create({ model, prompt, max_tokens: 16, temperature: 0 });
assert.equal(completion.choices[0].text, expectedRun);
assert.equal(completion.choices[0].finish_reason, 'length');
assert.equal(completion.usage.completion_tokens, 16);

let streamed = '';
const stream = await client.completions.create({ model, prompt, max_tokens: 16, temperature: 0, stream: true });
for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? '';
assert.equal(streamed, expectedRun);

const messages = [{ role: 'user', content: user }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
assert.equal(chat.choices[0].message.role, 'assistant');
assert.equal(chat.choices[0].message.content, expectedChat);

let chatStreamed = '';
let finish = null;
const chatStream = await client.chat.completions.create({
  model, messages, max_tokens: 16, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
let usage = null;
for await (const chunk of chatStream) {
  if (chunk.usage) usage = chunk.usage;
  const choice = chunk.choices[0];
  if (!choice) continue;
  chatStreamed += choice.delta?.content ?? '';
  if (choice.finish_reason) finish = choice.finish_reason;
}
assert.equal(chatStreamed, expectedChat);
assert.equal(finish, 'length');
assert.equal(usage?.completion_tokens, 16);

// Errors surface as the client's typed errors.
await assert.rejects(
  client.chat.completions.create({ model, messages: [{ role: 'wizard', content: 'x' }] }),
  (e) => e instanceof OpenAI.BadRequestError && /role/.test(e.message));
const wrongKey = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
await assert.rejects(wrongKey.models.list(), (e) => e instanceof OpenAI.AuthenticationError);

console.log('openai client: completions and chat, streaming and not: ok');
