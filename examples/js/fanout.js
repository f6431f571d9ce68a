/**
 * @task corpus-report
 * @description Reports on many texts at once: one `text-report` child per text,
 *   all in flight together (Promise.all), then one summary of the corpus. With
 *   text-report calling word-stats, a run is a call chain three levels deep.
 * @param {string[]} texts - the texts (at most 100)
 * @returns {object} {documents, words, sentences, longest, reports: [summary, ...]}
 */
module.exports = async function execute(input, context) {
  const texts = input.texts;
  if (!Array.isArray(texts) || texts.length > 100) {
    throw new TypeError('input.texts: expected an array of at most 100 strings');
  }
  const reports = await Promise.all(
    texts.map((text, i) => context.tasks.execute('text-report', { text, title: `text ${i + 1}` })));
  context.log('corpus-report:', reports.length, 'reports');
  return reports.reduce(
    (acc, r) => ({
      documents: acc.documents + 1,
      words: acc.words + r.stats.words,
      sentences: acc.sentences + r.sentences,
      longest: r.stats.longest.length > acc.longest.length ? r.stats.longest : acc.longest,
      reports: acc.reports.concat([r.summary]),
    }),
    { documents: 0, words: 0, sentences: 0, longest: '', reports: [] });
};
