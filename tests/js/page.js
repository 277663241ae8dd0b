// The search page in headless Chromium (playwright-core driving Debian's chromium):
//   node page.js BASE_URL QUERY WEAK_QUERY [SCREENSHOT.png]
// prints one JSON object of what the DOM shows: results and how many (and how many of their
// headers) are fully visible on a 1280x900 screen and on a phone, each result's page image
// and where its highlight colour is (read from a canvas), the copy buttons' clipboard text,
// the weak-match notice, and a search made with JavaScript off by typing into the form.
"use strict";
const { chromium } = require("playwright-core");

const visible = (selector) =>
  [...document.querySelectorAll(selector)].filter((el) => {
    const r = el.getBoundingClientRect();
    return r.top >= 0 && r.bottom <= window.innerHeight && r.width > 0;
  }).length;

// Each result's page image, drawn into a canvas: its size, and the pixels of the highlight
// colour inside the quote's boxes (data-marks, in image pixels) and far outside them.
const views = async () => {
  const near = (d, i) =>
    Math.abs(d[i] - 255) <= 3 && Math.abs(d[i + 1] - 221) <= 3 && d[i + 2] <= 3;
  const out = [];
  for (const li of document.querySelectorAll("li.hit")) {
    const img = li.querySelector(".view img");
    if (!img) {
      out.push(null);
      continue;
    }
    img.loading = "eager";
    img.scrollIntoView();
    try {
      await img.decode();
    } catch (e) {
      out.push({ error: String(e) });
      continue;
    }
    const w = img.naturalWidth, h = img.naturalHeight;
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, w, h).data;
    const boxes = img.dataset.marks.split(";").map((b) => b.split(",").map(Number));
    const within = (x, y, pad) =>
      boxes.some(([l, t, r, b]) => x >= l - pad && x < r + pad && y >= t - pad && y < b + pad);
    let inside = 0, area = 0, outside = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const hl = near(d, 4 * (y * w + x));
        if (within(x, y, 0)) {
          area++;
          if (hl) inside++;
        } else if (hl && !within(x, y, 4)) outside++;
      }
    }
    out.push({ width: w, height: h, inside, area, outside, href: img.closest("a").href });
  }
  return out;
};

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
    await page.waitForFunction(() =>
      [...document.querySelectorAll(".view img")].every((img) => {
        const r = img.getBoundingClientRect();
        return r.top > window.innerHeight || img.complete;
      })
    );  // the images on the screen are drawn before it is photographed
    out.visible = await page.evaluate(visible, "li.hit");
    out.visibleHeaders = await page.evaluate(visible, "li.hit .head");
    out.imagesOnScreen = await page.evaluate(() =>
      [...document.querySelectorAll(".view img")].filter((img) => {
        const r = img.getBoundingClientRect();
        return r.bottom <= window.innerHeight && img.complete && img.naturalWidth > 0;
      }).length
    );
    out.citations = await page.locator("li.hit .citation").allTextContents();
    if (screenshot) await page.screenshot({ path: screenshot });
    out.views = await page.evaluate(views);
    const whole = out.views.find((v) => v && v.href);
    if (whole) {
      const r = await page.request.get(whole.href);
      out.wholePage = { status: r.status(), type: r.headers()["content-type"] };
    }
    await page.evaluate(() => window.scrollTo(0, 0));
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
    out.visibleOnPhone = await small.evaluate(visible, "li.hit");
    out.viewWidthOnPhone = await small.evaluate(() => {
      const v = document.querySelector(".view");
      return v ? v.getBoundingClientRect().right <= window.innerWidth : null;
    });

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
