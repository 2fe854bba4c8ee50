// Tool calls through `mitten serve`, with a model that makes them (tests/serve/tools/make_model.sh trains it):
//   node tests/serve/tools.mjs MITTEN_BINARY MODEL_DIR
// The official `openai` client: tools given -> message.tool_calls (get_weather, {"city": "Paris"}), content null,
// finish_reason "tool_calls"; the same streamed, the deltas accumulated by index as OpenAI's guide does and by the
// SDK's own stream helper; the call and a `tool` answer sent back -> the text answer; tool_choice "none" -> the
// answer without tools, nothing parsed. Then LangChain's ChatOpenAI: bindTools -> AIMessage.tool_calls (whole and
// streamed), and a ToolMessage round trip.
import { ChatOpenAI } from '@langchain/openai';
import { HumanMessage, ToolMessage } from '@langchain/core/messages';
import OpenAI from 'openai';
import { isDeepStrictEqual } from 'node:util';

import { check, done, startServer, stopServer } from './serve_lib.mjs';

const [mitten, modelDir] = process.argv.slice(2);
// The tool exactly as tests/serve/tools/train.jsonl declares it: the toy model knows this prompt only.
const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Get the weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const QUESTION = 'What is the weather in Paris?';
const RESULT = 'sunny, 22 C';
const ANSWER = 'It is sunny in Paris.';
const NO_TOOLS = 'I cannot check the weather.';
const MAX = 64; // tokens per answer: the right ones take under 50, a wrong model's babble stays short

const server = await startServer(mitten, ['-m', modelDir, '--parallel', '2', '--model-name', 'tool-tiny']);
try {
  const client = new OpenAI({ baseURL: `${server.url}v1`, apiKey: 'any', maxRetries: 0 });
  const model = 'tool-tiny';
  const ask = [{ role: 'user', content: QUESTION }];
  const isParis = (args) => {
    try {
      return isDeepStrictEqual(JSON.parse(args), { city: 'Paris' });
    } catch {
      return false;
    }
  };

  // ---- openai: one call, whole
  const r = await client.chat.completions.create({ model, messages: ask, tools: [WEATHER], max_tokens: MAX });
  const msg = r.choices[0].message;
  const call = msg.tool_calls?.[0];
  check(r.choices[0].finish_reason === 'tool_calls', `finish_reason "${r.choices[0].finish_reason}" is tool_calls`);
  check(msg.tool_calls?.length === 1 && call.type === 'function' && /^call_/.test(call.id),
        `one tool call with an id: ${JSON.stringify(msg.tool_calls)}`);
  check(call?.function.name === 'get_weather', `function name "${call?.function.name}"`);
  check(isParis(call?.function.arguments), `arguments ${call?.function.arguments} parse to {city: "Paris"}`);
  check(msg.content === null, `content is null (${JSON.stringify(msg.content)})`);

  // ---- openai: the same streamed, deltas accumulated by index
  const stream = await client.chat.completions.create({ model, messages: ask, tools: [WEATHER], stream: true, max_tokens: MAX });
  const calls = [];
  let content = '', finish = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    const choice = chunk.choices[0];
    if (!choice) continue;
    content += choice.delta?.content ?? '';
    for (const d of choice.delta?.tool_calls ?? []) {
      const c = (calls[d.index] ??= { id: '', type: '', function: { name: '', arguments: '' } });
      if (d.id) c.id = d.id;
      if (d.type) c.type = d.type;
      c.function.name += d.function?.name ?? '';
      c.function.arguments += d.function?.arguments ?? '';
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  check(finish === 'tool_calls', `streamed: finish_reason "${finish}" is tool_calls (${chunks} chunks)`);
  check(calls.length === 1 && calls[0].function.name === 'get_weather' && isParis(calls[0].function.arguments) &&
        /^call_/.test(calls[0].id) && calls[0].type === 'function',
        `streamed: the accumulated call ${JSON.stringify(calls)}`);
  check(content === '', `streamed: no content (${JSON.stringify(content)})`);

  const helper = client.chat.completions.stream({ model, messages: ask, tools: [WEATHER], max_tokens: MAX });
  const final = await helper.finalChatCompletion();
  const hc = final.choices[0].message.tool_calls?.[0];
  check(final.choices[0].finish_reason === 'tool_calls' && hc?.function.name === 'get_weather' &&
        isParis(hc?.function.arguments), `the SDK's stream helper: ${JSON.stringify(final.choices[0].message)}`);

  // ---- openai: the round trip
  const back = [...ask, msg, { role: 'tool', tool_call_id: call?.id ?? 'call_0', content: RESULT }];
  const r2 = await client.chat.completions.create({ model, messages: back, tools: [WEATHER], max_tokens: MAX });
  check(r2.choices[0].message.content === ANSWER, `after the tool's answer: "${r2.choices[0].message.content}"`);
  check(r2.choices[0].finish_reason === 'stop' && !r2.choices[0].message.tool_calls,
        `finish_reason "${r2.choices[0].finish_reason}", no tool calls`);
  const s2 = await client.chat.completions.create({ model, messages: back, tools: [WEATHER], stream: true, max_tokens: MAX });
  let text2 = '', finish2 = null;
  for await (const chunk of s2) {
    text2 += chunk.choices[0]?.delta?.content ?? '';
    finish2 = chunk.choices[0]?.finish_reason ?? finish2;
  }
  check(text2 === ANSWER && finish2 === 'stop', `streamed after the tool's answer: "${text2}", ${finish2}`);

  // ---- openai: tool_choice none renders no tools and parses nothing
  const r3 = await client.chat.completions.create({ model, messages: ask, tools: [WEATHER], tool_choice: 'none', max_tokens: MAX });
  check(r3.choices[0].message.content === NO_TOOLS && r3.choices[0].finish_reason === 'stop' &&
        !r3.choices[0].message.tool_calls, `tool_choice none: "${r3.choices[0].message.content}", ` +
        `${r3.choices[0].finish_reason}`);

  // ---- LangChain
  const llm = new ChatOpenAI({ model, apiKey: 'any', configuration: { baseURL: `${server.url}v1` }, maxRetries: 0,
                               maxTokens: MAX });
  const withTools = llm.bindTools([WEATHER]);
  const human = new HumanMessage(QUESTION);
  const ai = await withTools.invoke([human]);
  const tc = ai.tool_calls?.[0];
  check(ai.tool_calls?.length === 1 && tc.name === 'get_weather' && isDeepStrictEqual(tc.args, { city: 'Paris' }) &&
        typeof tc.id === 'string', `LangChain: AIMessage.tool_calls ${JSON.stringify(ai.tool_calls)}`);
  check(ai.response_metadata?.finish_reason === 'tool_calls',
        `LangChain: finish_reason "${ai.response_metadata?.finish_reason}"`);
  let streamed;
  for await (const chunk of await withTools.stream([human])) streamed = streamed ? streamed.concat(chunk) : chunk;
  const sc = streamed?.tool_calls?.[0];
  check(streamed?.tool_calls?.length === 1 && sc.name === 'get_weather' && isDeepStrictEqual(sc.args, { city: 'Paris' }),
        `LangChain streamed: the chunks concatenated give ${JSON.stringify(streamed?.tool_calls)}`);
  const answer = await withTools.invoke([human, ai, new ToolMessage({ content: RESULT, tool_call_id: tc?.id ?? 'x' })]);
  check(answer.content === ANSWER && !answer.tool_calls?.length,
        `LangChain: after the ToolMessage "${answer.content}"`);
} finally {
  await stopServer(server);
}
done();
