/**
 * @task word-stats
 * @description Word statistics of a text: how many words, how many distinct ones,
 *   the longest word and the most frequent words. A pure function: it reads only
 *   its input and calls nothing.
 * @param {string} text - the text to count (words are runs of letters, digits and apostrophes)
 * @param {number} [top] - how many of the most frequent words to return (default 3)
 * @returns {object} {words, distinct, longest, top: [{word, count}, ...]}
 */
module.exports = async function execute(input, context) {
  if (typeof input.text !== 'string') {
    throw new TypeError('input.text: expected a string, got ' + typeof input.text);
  }
  const top = input.top === undefined ? 3 : input.top;
  if (!Number.isInteger(top) || top < 0) {
    throw new TypeError('input.top: expected an integer >= 0, got ' + JSON.stringify(top));
  }
  const words = input.text.toLowerCase().match(/[\p{L}\p{N}']+/gu) || [];
  const counts = new Map();
  let longest = '';
  for (const w of words) {
    counts.set(w, (counts.get(w) || 0) + 1);
    if (w.length > longest.length) longest = w;
  }
  // Most frequent first; ties in alphabetical order, so the result is deterministic.
  const ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return {
    words: words.length,
    distinct: counts.size,
    longest,
    top: ranked.slice(0, top).map(([word, count]) => ({ word, count })),
  };
};
