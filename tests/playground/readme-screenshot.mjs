// Makes the README's screenshot of the playground (assets/readme/playground.png): a thread
// with a code_interpreter figure and its steps, in the same environment as the tests.
// Not part of the suite; run by hand after changing the page (`cargo build --workspace --bins`
// first: the stand-in is the workspace's `standin/` crate):
//   ASSISTANTS_BIN=target/debug/assistants-service LLM_STANDIN_BIN=target/debug/llm-standin \
//     node tests/playground/readme-screenshot.mjs

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEnvironment, until } from './harness.mjs';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../assets/readme/playground.png');
const PLOT = `import pandas as pd
import matplotlib.pyplot as plt
sales = pd.DataFrame({'month': ['Jan', 'Feb', 'Mar', 'Apr'], 'amount': [150, 200, 100, 260]})
sales.plot(x='month', y='amount', kind='bar', legend=False, figsize=(5, 3))
plt.title('Monthly totals')
plt.tight_layout()
plt.show()
print(sales['amount'].sum())
`;

const env = await startEnvironment();
try {
  const model = 'gpt-4o-mini';
  const asst = await env.api('POST', 'assistants', {
    model, name: 'Data analyst', instructions: 'You analyse sales data.', tools: [{ type: 'code_interpreter' }],
  });
  await env.script(model,
    { tool_calls: [{ name: 'python', arguments: JSON.stringify({ code: PLOT }) }] },
    { text: 'Sales peaked in **April** (260). The four months total **710**.' });
  const page = await env.open({ width: 1280, height: 760 });
  await page.evaluate(() => { location.hash = '#/threads'; });
  const select = page.getByLabel('Assistant', { exact: true });
  await until(async () => (await select.locator(`option[value="${asst.id}"]`).count()) === 1, 'the assistant');
  await select.selectOption(asst.id);
  await page.getByLabel('Message', { exact: true }).fill('Plot the monthly sales totals.');
  await page.getByRole('button', { name: 'Send and run' }).click();
  await until(async () => (await page.locator('#run-status').getAttribute('data-status')) === 'completed', 'the run', 60_000);
  await until(() => page.locator('.message img.file-image').first().evaluate((img) => img.complete && img.naturalWidth > 0), 'the figure');
  await page.screenshot({ path: OUT });
  console.log(`wrote ${OUT}`);
} finally {
  await env.close();
}
