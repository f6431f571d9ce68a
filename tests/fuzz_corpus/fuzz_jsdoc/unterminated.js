/** @task unterminated
 * @param {string