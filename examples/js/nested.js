/**
 * @task text-report
 * @description A one-line report on a text. It calls the published task
 *   `word-stats` by name (context.tasks.execute), waits for its result and
 *   combines it with what it computes itself.
 * @param {string} text - the text to report on
 * @param {string} [title] - a title for the report (default "untitled")
 * @returns {object} {title, sentences, summary, stats} where stats is word-stats' result
 */
module.exports = async function execute(input, context) {
  const title = input.title || 'untitled';
  context.log('text-report', title + ': asking word-stats');
  // A child task: runs wherever the cluster places it; this task's slot is lent meanwhile.
  const stats = await context.tasks.execute('word-stats', { text: input.text, top: 1 });
  const sentences = (String(input.text).match(/[.!?]+(\s|$)/g) || []).length;
  const most = stats.top.length > 0 ? `, most often "${stats.top[0].word}" (${stats.top[0].count}x)` : '';
  return {
    title,
    sentences,
    summary: `${title}: ${stats.words} words, ${stats.distinct} distinct, longest "${stats.longest}"${most}`,
    stats,
  };
};
