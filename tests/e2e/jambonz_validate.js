// Checks jambonz answers with jambonz's own validator: `validate()` of the npm package
// `@jambonz/verb-specifications`, the checks a jambonz feature server applies to an
// application's verbs. Input: a JSON file of [{"name": "...", "verbs": [...]}, ...] written by
// tests/e2e/test_interop.py. Prints one line per refused answer; exits 1 if any is refused.
'use strict';
const fs = require('fs');
const { validate } = require('@jambonz/verb-specifications');

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const answers = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
let refused = 0;
for (const answer of answers) {
  try {
    validate(quiet, answer.verbs);
  } catch (e) {
    refused += 1;
    console.log(`refused: ${answer.name}: ${e.message}\n  ${JSON.stringify(answer.verbs)}`);
  }
}
console.log(`  ${answers.length - refused} of ${answers.length} jambonz answers accepted by validate()`);
process.exit(refused ? 1 : 0);
