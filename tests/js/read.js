// Read a bibliography file with citation-js and print what it understood, as CSL-JSON.
// usage: node read.js ris|bib|csl FILE
'use strict'
const fs = require('fs')
const { Cite } = require('@citation-js/core')
require('@citation-js/plugin-ris')
require('@citation-js/plugin-bibtex')
require('@citation-js/plugin-csl')

const FORMATS = { ris: '@ris/file', bib: '@biblatex/text', csl: '@csl/list+object' }
const [fmt, file] = process.argv.slice(2)
if (!FORMATS[fmt] || !file) {
  console.error('usage: node read.js ris|bib|csl FILE')
  process.exit(2)
}
let text = fs.readFileSync(file, 'utf8')
const input = fmt === 'csl' ? JSON.parse(text) : text
const cite = new Cite(input, { forceType: FORMATS[fmt] })
process.stdout.write(JSON.stringify(cite.data, null, 2) + '\n')
