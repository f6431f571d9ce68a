/** license */
/**/
/** Leading text.
 * @task second-block
 * @param x untyped
 * @return {number}
 */
