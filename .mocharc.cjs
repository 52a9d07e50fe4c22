/* global module */
// mocha configuration. With no test file named on the command line it runs the whole suite;
// `npx mocha test/foo.test.ts` runs only the files named (mocha would otherwise add them to the
// configured spec and run everything).
const named = process.argv
  .slice(2)
  .some((arg) => /\.test\.[cm]?[jt]s$/.test(arg) || /^test\//.test(arg));

module.exports = {
  'node-option': ['import=tsx'],
  ...(named ? {} : { spec: ['test/**/*.test.ts'] }),
  timeout: 60000,
  exit: true,
  reporter: 'spec',
};
