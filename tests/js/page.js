// The search page in headless Chromium (playwright-core driving Debian's chromium):
//   node page.js BASE_URL QUERY WEAK_QUERY [SCREENSHOT.png]
// prints one JSON object of what the DOM shows: results and how many are fully visible on a
// 1280x900 screen and on a phone, the copy buttons' clipboard text, the weak-match notice,
// and a search made with JavaScript off by typing into the form.
"use strict";
const { chromium } = require("playwright-core");

const visible = () =>
  [...document.querySelectorAll("li.hit")].filter((li) => {
    const r = li.getBoundingClientRect();
    return r.top >= 0 && r.bottom <= window.innerHeight;
  }).length;

async function main() {
  const [base, query, weakQuery, screenshot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  const out = {};
  try {
    const url = `${base}/?q=${encodeURIComponent(query)}&k=10`;
    const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await desktop.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
    const page = await desktop.newPage();
    await page.goto(url);
    out.results = await page.locator("li.hit").count();
    out.visible = await page.evaluate(visible);
    out.citations = await page.locator("li.hit .citation").allTextContents();
    if (screenshot) await page.screenshot({ path: screenshot });
    await page.locator("li.hit button.copy-md").first().click();
    out.copiedMarkdown = await page.evaluate(() => navigator.clipboard.readText());
    out.buttonAfter = await page.locator("li.hit button.copy-md").first().textContent();
    await page.locator("li.hit button.copy-bib").first().click();
    out.copiedBibtex = await page.evaluate(() => navigator.clipboard.readText());
    await page.goto(`${base}/?q=${encodeURIComponent(weakQuery)}&k=10`);
    out.weakNotice = await page.locator("#weak-match").count();
    await page.goto(url);
    out.weakNoticeOnRealQuery = await page.locator("#weak-match").count();

    const phone = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const small = await phone.newPage();
    await small.goto(url);
    out.visibleOnPhone = await small.evaluate(visible);

    const noJs = await browser.newContext({ javaScriptEnabled: false });
    const plain = await noJs.newPage();
    await plain.goto(base + "/");
    await plain.fill('input[name="q"]', query);
    await Promise.all([plain.waitForNavigation(), plain.click('button[type="submit"]')]);
    out.noJsUrl = plain.url();
    out.noJsResults = await plain.locator("li.hit").count();
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
