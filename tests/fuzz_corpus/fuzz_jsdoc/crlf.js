/**
 * @task crlf
 * @param {string=} [a=[1,2]] - x
 */
