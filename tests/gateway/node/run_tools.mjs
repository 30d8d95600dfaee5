// The openai Node SDK's tool runner against the gateway: `runTools` calls the model, runs the
// tool it asked for, sends the result back and reads the answer. Plain or streamed (argv[4]).
// Prints one JSON line: what the tool was asked and the runner's final content.
import OpenAI from "openai";

const [baseURL, apiKey, model, mode] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const asked = [];
const runner = client.chat.completions.runTools({
  model,
  stream: mode === "stream",
  messages: [{ role: "user", content: "What is the temperature in Paris?" }],
  tools: [
    {
      type: "function",
      function: {
        name: "temperature_in",
        description: "The temperature in a city now, in degrees Celsius.",
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        parse: JSON.parse,
        function: ({ city }) => {
          asked.push(city);
          return { city, celsius: 21.5 };
        },
      },
    },
  ],
});
try {
  const content = await runner.finalContent();
  console.log(JSON.stringify({ asked, content, messages: runner.messages.length }));
} catch (error) {
  console.log(JSON.stringify({ asked, error: String(error), status: error.status ?? null }));
}
