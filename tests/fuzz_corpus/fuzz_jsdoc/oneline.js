/** @task one-liner */
module.exports = () => 1;
