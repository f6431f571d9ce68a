/**
 * @task domain-info
 * @description Looks up a domain.
 *   Continuation lines belong to the description.
 * @param {string} input.domain - The domain
 * @param {boolean} [input.includeStats=false] Optional, with a default
 * @param {{a: number}} input.shape nested braces
 * @returns {Object} Domain information
 */
module.exports = async function execute(input, context) {
  return { domain: input.domain };
};
